export { BARLOW_EPS, barlowTwinsLoss, barlowPairMean, crossCorrelationParts, barlowLossFromParts } from './barlow';
export type { DinoTemps } from './dino';
export { dinoLoss, updateCenter } from './dino';
export type { DinoTwinsOptions, DinoTwinsLoss } from './dinoTwins';
export { dinoTwinsLoss } from './dinoTwins';
export type { CrossCorrelationStats } from './stepMonitors';
export {
  embeddingStdTensor,
  crossCorrelationSummary,
  teacherEntropyTensor,
  teacherStudentKLTensor,
} from './stepMonitors';
