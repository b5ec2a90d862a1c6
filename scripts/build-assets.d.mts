export declare const ASSETS_DIR: string;
export declare const SITES: { mount: string; vendor: { pkg: string; files: string[]; to: string }[]; bundle?: { entry: string; outfile: string } }[];
export declare function buildAssets(root?: string): { dir: string; written: number; current: number };
