export * from './model';
export * from './step';
export { barlowStep } from './barlow';
export { dinoStep } from './dino';
export { dinoTwinsStep } from './dinoTwins';
import { Method } from '../config';
import { MethodStep } from './step';
import { barlowStep } from './barlow';
import { dinoStep } from './dino';
import { dinoTwinsStep } from './dinoTwins';

export const METHOD_STEPS: Readonly<Record<Method, MethodStep>> = Object.freeze({ barlow: barlowStep, dino: dinoStep, 'dino-twins': dinoTwinsStep });
