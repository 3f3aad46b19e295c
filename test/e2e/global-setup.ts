// Starts one real control plane (etcd + kube-apiserver) for the whole e2e run and hands its
// admin kubeconfig to the tests: `connect(inject('kubeconfig'))` from test/cluster.
import type { TestProject } from 'vitest/node';
import { startControlPlane } from '../cluster/control-plane.ts';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cp = await startControlPlane();
  console.log(`[e2e] control plane ready at ${cp.server} in ${cp.startupMs} ms (${cp.dir})`);
  project.provide('kubeconfig', cp.kubeconfigPath);
  // For code under test that reads the ambient kubeconfig like any Kubernetes client does.
  process.env['KUBECONFIG'] = cp.kubeconfigPath;
  return async () => {
    await cp.stop();
  };
}
