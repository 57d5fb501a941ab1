/** The CIFAR-10 data layer: loading with verification, seeded subsets, statistics and the synthetic fixture. */
export * from './errors';
export * from './format';
export * from './verify';
export * from './download';
export * from './cache';
export * from './cifar10';
export * from './split';
export * from './stats';
export * from './fixture';
export * from './fallback';
export * from './identity';
