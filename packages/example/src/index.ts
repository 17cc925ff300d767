export * from './score-picks';
export * from './synthetic-tomogram';
export * from './bundled-example';
