// What test/node/global-setup.ts hands to the node tier (the KEY=value lines of cluster.sh's env).
import 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    /** KUBECONFIG, SERVER, NODE_IP, PV_DIR, CTR_ADDRESS, KUBERELAY_IMAGE, REDIS_IMAGE, ... */
    node: Record<string, string>;
  }
}
