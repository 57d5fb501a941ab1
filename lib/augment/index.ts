/** Batched, seeded augmentations and multi-crop views (see views.ts for the pipeline). */
export * from './normalize';
export * from './sampleParams';
export * from './resample';
export * from './color';
export * from './pipeline';
export * from './presets';
export * from './grid';
