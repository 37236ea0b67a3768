import { defineConfig } from '@hey-api/openapi-ts';

export default defineConfig({
  input: './spec/openapi-agents.json',
  output: { path: './src/wire/generated' },
  plugins: [{ name: 'zod', requests: false, responses: false }],
});
