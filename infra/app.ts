import { writeSync } from 'node:fs';
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ContextError, stackNameFromContext } from './context.js';
import { RegistryJanitorPropsError } from './registry-janitor.js';
import { DEFAULT_STACK_NAME, RegistryJanitorStack } from './registry-janitor-stack.js';

const app = new App();
const { stackName, problem } = stackNameFromContext(app, DEFAULT_STACK_NAME);
const problems = problem === undefined ? [] : [problem];
try {
  new RegistryJanitorStack(app, stackName);
} catch (error) {
  if (error instanceof ContextError) problems.push(...error.problems);
  else if (error instanceof RegistryJanitorPropsError) problems.push(error.message);
  else throw error;
}
if (problems.length > 0) {
  // Exit before the CLI's synthesis runs over a stack that was left half built; stderr is written synchronously.
  writeSync(2, `registry-janitor: ${new ContextError(problems).message}\n`);
  process.exit(2);
}
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
