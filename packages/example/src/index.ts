export * from './score-picks';
export * from './synthetic-tomogram';
