export * from './pick';
export * from './box-size';
export * from './subtomogram';
export * from './wedge-mask';
export * from './star-table';
export * from './relion-common';
export * from './relion-particles';
export * from './relion5-particles';
export * from './imod-model';
export * from './dynamo-table';
export * from './read-picks-star';
export * from './output-folder';
export * from './export-relion';
export * from './export-relion5';
export * from './export-imod';
export * from './export-dynamo';
// What a caller of the exports needs of the layers below (picks' angles, optics defaults), so it depends on this alone.
export { matrixToPytmeEuler, matrixToRelionEuler } from '@tme/rotations';
export { DEFAULT_MICROSCOPE, type Microscope } from '@tme/template';
