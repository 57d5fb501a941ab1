/** Charts, image grids, tables and progress bars for tslab notebooks and the CLI. */
export * from './display';
export * from './png';
export * from './render';
export * from './specs';
export * from './charts';
export * from './images';
export * from './table';
export * from './progress';
export * from './umap';
export * from './plotly';
export * from './embeddingExplorer';
export * from './neighbourGrid';
export * from './attention';
export * from './gallery';
