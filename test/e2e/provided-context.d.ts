// Values that test/e2e/global-setup.ts hands to e2e tests through vitest's provide/inject.
import 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin kubeconfig of the run's control plane; pass it to connect() from test/cluster. */
    kubeconfig: string;
  }
}
