export * from './method';
export * from './stepContract';
export * from './model';
export * from './registry';
export { barlowMethod, barlowStep, addProjector, PROJECTOR_SECTION, BARLOW_SECTION } from './barlow';
export type { BarlowConfig, ProjectorConfig, BarlowStepOptions } from './barlow';
export {
  dinoMethod,
  dinoStep,
  dinoCore,
  addDinoParts,
  dinoTemps,
  finalDinoTemps,
  DINO_DEFAULTS,
  DINO_SECTION,
  SHORT_DINO,
  DINO_RECIPE,
  MULTI_CROP_AUGMENT,
  multiCropViews,
} from './dino';
export type { DinoConfig, DinoHeadConfig, AblationConfig, DinoCore, DinoParts } from './dino';
export { dinoTwinsMethod, dinoTwinsStep, TWINS_SECTION } from './dinoTwins';
export type { TwinsConfig, TwinsStepOptions } from './dinoTwins';
