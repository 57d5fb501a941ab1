/** Sweeps: specs and their expansion, run states and results, the local and Slurm engines, status. */
export * from './spec';
export * from './records';
export * from './local';
export * from './run';
export * from './slurm';
export * from './status';
export * from './ablations';
export * from './fullAblations';
export * from './barlowControl';
export * from './dinoRecipe';
