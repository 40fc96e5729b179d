/**
 * Writes Nissa's alert rules as a Prometheus rules file (and, with --tests, the promtool
 * unit tests for it), from the settings in effect (environment, ESPER_CONFIG file).
 *
 *   npx tsx scripts/nissa-rules.ts --out var/prometheus/esper.rules.yml [--tests var/prometheus/esper.rules.test.yml]
 *   promtool check rules var/prometheus/esper.rules.yml
 *   promtool test rules var/prometheus/esper.rules.test.yml
 */
import { parseArgs } from 'node:util';
import { loadSettings } from '../src/core/index.js';
import { writePrometheusRules } from '../src/nissa/index.js';

const { values } = parseArgs({ options: { out: { type: 'string' }, tests: { type: 'string' } } });
if (values.out === undefined) {
  process.stderr.write('usage: nissa-rules --out <rules.yml> [--tests <tests.yml>]\n');
  process.exit(2);
}
const settings = loadSettings();
writePrometheusRules(values.out, settings.nissa, values.tests);
process.stdout.write(`wrote ${values.out}${values.tests === undefined ? '' : ` and ${values.tests}`}\n`);
