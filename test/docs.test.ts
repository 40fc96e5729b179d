import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderRunbook, RUNBOOK } from '../scripts/settings-doc.js';

describe('docs move with code', () => {
  it('lists every setting in the operator runbook as the schema defines it', () => {
    const current = readFileSync(RUNBOOK, 'utf8');
    expect(renderRunbook(current), 'run `npx tsx scripts/settings-doc.ts`').toBe(current);
  });
});
