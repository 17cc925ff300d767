export * from './score-picks';
export * from './random';
export * from './synthetic-tomogram';
