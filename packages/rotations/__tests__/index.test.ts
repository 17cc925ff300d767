import * as api from '../src';

// The public API other packages build on: a removal or rename must show up here first.
it('exports exactly the public names', () => {
  expect(Object.keys(api).sort()).toEqual([
    'ANGLES_TSV_HEADER', 'ANGULAR_STEP_RANGE', 'RotationIndex', 'angleBetween', 'apply', 'axisAngleToMatrix', 'coneRotations',
    'dynamoEulerToMatrix', 'expandByGroup', 'formatAnglesTsv', 'identity', 'matrixFrom', 'matrixToDynamoEuler', 'matrixToPytmeEuler', 'matrixToQuaternion',
    'matrixToRelionEuler', 'matrixToStopgapEuler', 'measureCovering', 'multiply', 'multiplyQuaternions', 'orthogonalityError', 'parseAnglesTsv',
    'parseSymmetry', 'priorCone', 'pytmeEulerToMatrix', 'pytmeToRelionEuler', 'quaternionToMatrix', 'randomQuaternion',
    'readRotationList', 'relionEulerToMatrix', 'rotationAngle', 'rotationAt', 'rotationFromZ', 'rotationX', 'rotationY',
    'rotationZ', 'rotationsFromQuaternionArray', 'sampleRotations', 'seededRandom', 'stopgapEulerToMatrix', 'symmetryGroup', 'toArrayOrder', 'transpose', 'wrapDegrees',
  ]);
});
