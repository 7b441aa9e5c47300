import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { CONTEXT, DEFAULT_STACK_NAME, RegistryJanitorStack } from './registry-janitor-stack.js';

const app = new App();
const stackName: unknown = app.node.tryGetContext(CONTEXT.stackName);
new RegistryJanitorStack(
  app,
  typeof stackName === 'string' && stackName !== '' ? stackName : DEFAULT_STACK_NAME,
);
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
