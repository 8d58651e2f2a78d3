/**
 * `stratus push PROJECT [--ref R] [--namespace NS] [--kubeconfig FILE]`: deploys a Project now.
 *
 * Creates a Deployment of the Project (label and owner reference as the Project controller
 * makes them) for `--ref` (default: the Project's `source.git.ref`), resolved to a commit when
 * the Deployment starts; an artifact Project deploys its `source.artifact` again. Prints the
 * Deployment's name; follow it with `kubectl get sdeploy NAME -w`.
 */
import type { Command } from 'commander';
import type { Deployment, Project } from '../crds/types.js';
import { KubeClient } from '../runtime/client.js';
import { Resources } from '../controllers/resources.js';
import { deploymentFor, deploymentName } from '../controllers/project.js';
import { DEFAULT_KUBECONFIG } from './token.js';

/** What a push of `project` deploys: `ref` (a branch, tag or 40-hex commit), else its own ref or artifact. */
export function pushSpec(project: Project, ref: string | undefined): Omit<Deployment['spec'], 'project'> {
  // a pushed Project redeploys a ref of its own remote
  const git = project.spec.source.git ?? (project.spec.source.push ? { ref: project.spec.source.push.ref } : undefined);
  if (git) return /^[0-9a-f]{40}$/.test(ref ?? '') ? { commit: ref! } : { ref: ref ?? git.ref ?? 'main' };
  if (project.spec.source.artifact && ref === undefined) return { artifact: project.spec.source.artifact };
  throw new Error(`Project "${project.metadata?.name}" deploys an artifact: --ref does not apply`);
}

export function registerPush(program: Command): void {
  program
    .command('push')
    .description('deploy a Project now (its ref, or --ref)')
    .argument('<project>', 'name of the Project')
    .option('--ref <ref>', 'branch, tag or commit to deploy (default: the Project\'s source.git.ref)')
    .option('--namespace <ns>', 'namespace of the Project', 'default')
    .option('--kubeconfig <file>', 'kubeconfig of the API server', DEFAULT_KUBECONFIG)
    .action(async (name: string, raw: Record<string, unknown>) => {
      const client = KubeClient.fromFile(String(raw.kubeconfig));
      try {
        const namespace = String(raw.namespace);
        const project = await client.resource<Project>(Resources.projects).get(namespace, name);
        if (!project) throw new Error(`Project "${name}" does not exist in namespace ${namespace}`);
        const spec = pushSpec(project, raw.ref === undefined ? undefined : String(raw.ref));
        const created = await client.resource<Deployment>(Resources.deployments).create(deploymentFor(project, deploymentName(name, 'push'), spec));
        process.stdout.write(`deployment ${created.metadata?.name} created (${spec.commit ?? spec.ref ?? spec.artifact})\n`);
      } finally {
        client.close();
      }
    });
}
