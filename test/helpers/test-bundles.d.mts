export declare const TEST_BUNDLES: string;
export declare function bundleOf(file: string): string;
export declare function sourceOf(path: string): string;
