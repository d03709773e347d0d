export declare const ROOT: string;
export declare const SRC: string;
export declare const DIST: string;
export declare function buildIsFresh(): boolean;
export declare const BUNDLE: string;
export declare function bundleIsFresh(entry: string): boolean;
