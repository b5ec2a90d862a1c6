export declare const ASSETS_DIR: string;
export declare const SITES: { mount: string; vendor: { pkg: string; files: string[]; to: string }[] }[];
export declare function buildAssets(root?: string): { dir: string; written: number; current: number };
