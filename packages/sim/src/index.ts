export * from './machine.js';
export * from './report.js';
export * from './render.js';
export * from './network.js';
