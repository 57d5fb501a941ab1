export { BARLOW_LAMBDA, BARLOW_EPS, crossCorrelation, barlowTwinsLoss, barlowPairMean, crossCorrelationParts, barlowLossFromParts } from './barlow';
export type { DinoTemps } from './dino';
export { DINO_CENTER_MOMENTUM, dinoLoss, updateCenter } from './dino';
export type { DinoTwinsOptions, DinoTwinsLoss } from './dinoTwins';
export { DINO_TWINS_DEFAULTS, dinoTwinsLoss } from './dinoTwins';
// lib/methods imports the EMA update from here; it lives in lib/ema.ts.
export { emaUpdate, emaUpdateStore } from '../ema';
