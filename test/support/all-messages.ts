/** Every message schema Leyline exports, for tests that cover "every message". */
import type { DescMessage } from '@bufbuild/protobuf';
import * as leyline from '../../src/leyline/index.js';

export const ALL_MESSAGE_SCHEMAS: readonly DescMessage[] = (Object.values(leyline) as unknown[])
  .filter((v): v is DescMessage => typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'message')
  .sort((a, b) => a.typeName.localeCompare(b.typeName));
