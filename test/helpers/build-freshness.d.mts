export declare const ROOT: string;
export declare const SRC: string;
export declare const DIST: string;
export declare function buildIsFresh(): boolean;
