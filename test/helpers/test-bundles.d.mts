export declare const TEST_BUNDLES: string;
export declare const SCRIPTS: readonly string[];
export declare function runOf(path?: string): string | undefined;
export declare function bundleOf(file: string, run: string): string;
export declare function sourceOf(path: string): string;
export declare function scriptBundle(script: string): string | undefined;
