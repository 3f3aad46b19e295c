import { z } from 'zod';

/** Prices and budgets are decimal strings in the API (like Kubernetes quantities avoid floats). */
export const DECIMAL_PATTERN = '^[0-9]{1,12}(\\.[0-9]{1,12})?$';

export const decimal = () =>
  z
    .string()
    .regex(new RegExp(DECIMAL_PATTERN), { message: 'must be a non-negative decimal string such as "0.15"' });
