export * from './types';
export * from './errors';
export * from './ports';
export * from './write-ordered-map';
