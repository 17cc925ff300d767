import * as api from '../src';

it('exports exactly the documented surface', () => {
  expect(Object.keys(api).sort()).toMatchSnapshot();
});
