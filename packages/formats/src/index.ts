export * from './errors';
export * from './volume';
export * from './atomic-write';
