/**
 * Where a signer's 32-byte data key comes from (the key every stored secret is sealed under,
 * src/signer/keystore.ts). A passphrase (./passphrase.ts) or an HSM over PKCS#11 can meet
 * this contract: the store keeps only `kind` and the non-secret `params` a source returns at
 * initialisation, and asks the source to unwrap the data key from them at every open.
 */
export interface KeySource {
  /**
   * Stable description of the source and its parameters. The store records it when a data
   * directory is created and refuses to open that directory with a source of another kind,
   * so a mismatch is reported as such and not as a wrong passphrase.
   */
  readonly kind: string;
  /**
   * A new data directory: make a data key and the parameters needed to get it back (a salt,
   * a wrapped key, a token key label). `params` is stored in the clear; it must not reveal
   * the data key. The caller wipes `dataKey`.
   */
  init(): Promise<{ params: Uint8Array; dataKey: Uint8Array }>;
  /** An existing data directory: the data key from the stored `params`. The caller wipes it. */
  unwrap(params: Uint8Array): Promise<Uint8Array>;
  /**
   * Whether this source also opens a directory recorded under another kind of its own family
   * (the passphrase source opens directories whose kind string still carries their scrypt
   * parameters). Without it, a source opens only its own `kind`.
   */
  opensKind?(recorded: string): boolean;
  /** Forget any secret the source holds in memory (a passphrase copy, a PIN, a session). */
  dispose(): void | Promise<void>;
}

export const DATA_KEY_BYTES = 32;
