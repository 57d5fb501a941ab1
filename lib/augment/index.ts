/** Batched, seeded augmentations and multi-crop views (see views.ts for the pipeline). */
export * from './normalize';
export * from './params';
export * from './resample';
export * from './color';
export * from './views';
export * from './presets';
export * from './grid';
