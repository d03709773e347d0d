export declare const TEST_BUNDLES: string;
export declare function bundleOf(file: string): string;
export declare function sourceOf(path: string): string;
export declare const SCRIPTS: readonly string[];
export declare function runningFromBundle(): boolean;
export declare function scriptBundle(script: string): string | undefined;
