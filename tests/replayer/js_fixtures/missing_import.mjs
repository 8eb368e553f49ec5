import { nothing } from './does_not_exist.mjs';
export const reducer = (s) => s ?? nothing;
