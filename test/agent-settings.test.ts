import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Role } from '../src/domain/caller.js';
import { snapshotDatabase } from './support/db-snapshot.js';
import { createAgent } from './support/fixtures.js';
import { describeResponse, expectApiError, snapshotDiff } from './support/route-requests.js';
import { injectAs, okJson, startTestApp, type TestApp, userIdsByRole } from './support/test-app.js';

// Issue 14, defect 4: the agent-wide (unversioned) settings — platform_settings `auth`,
// `call_limits`, `privacy`, `ban`, `archived` — change what main serves whichever branch a write
// names. So changing them needs main's write permission (else 403 and nothing changes), and every
// change is an audit event `agent.settings_update` (who, when, which paths, before and after).
// Generated over every route that takes them × role × main's protection × branch × setting.

let testApp: TestApp;
const userId = {} as Record<Role, string>;

beforeAll(async () => {
  testApp = await startTestApp();
  Object.assign(userId, await userIdsByRole(testApp));
});
afterAll(() => testApp.close());

const send = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, key: string, payload?: unknown) => injectAs(testApp, method, url, key, payload);

const ROLES: Role[] = ['viewer', 'commenter', 'editor', 'admin'];
const PROTECTIONS = ['writer_perms_required', 'admin_perms_required'] as const;
const BRANCHES = ['main', 'unprotected branch'] as const;

/** Each agent-wide setting, a value that differs from the default, and the paths that change. */
const SETTINGS: Record<string, { value: unknown; paths: string[] }> = {
  auth: { value: { enable_auth: true, allowlist: [{ hostname: 'attacker.example' }] }, paths: ['auth.allowlist', 'auth.enable_auth'] },
  call_limits: { value: { daily_limit: 3 }, paths: ['call_limits.daily_limit'] },
  privacy: { value: { record_voice: false }, paths: ['privacy.record_voice'] },
  ban: { value: { reason_type: 'safety', reason: 'abuse' }, paths: ['ban'] },
  archived: { value: true, paths: ['archived'] },
};

interface Route {
  name: string;
  /** The request that sends `setting` on `branchId` (main's or the unprotected branch's). */
  request(fixture: Fixture, branchId: string, platformSettings: Record<string, unknown>): { method: 'PATCH' | 'POST'; url: string; payload: unknown };
  /** Whether an allowed request makes a version (and on which branch the event names). */
  makesVersion: boolean;
}

const ROUTES: Route[] = [
  {
    name: 'PATCH agent with the setting only',
    request: (f, branchId, platform_settings) => ({ method: 'PATCH', url: `/v1/convai/agents/${f.agentId}?branch_id=${branchId}`, payload: { platform_settings } }),
    makesVersion: false,
  },
  {
    name: 'PATCH agent with the setting and a versioned change',
    request: (f, branchId, platform_settings) => ({
      method: 'PATCH',
      url: `/v1/convai/agents/${f.agentId}?branch_id=${branchId}`,
      payload: { platform_settings: { ...platform_settings, widget: { variant: 'full' } }, conversation_config: { agent: { first_message: 'changed' } } },
    }),
    makesVersion: true,
  },
  {
    name: 'POST branches (a new branch from this one) with the setting',
    request: (f, branchId, platform_settings) => ({
      method: 'POST',
      url: `/v1/convai/agents/${f.agentId}/branches`,
      payload: { parent_version_id: f.heads[branchId], name: 'Sent along', description: '', platform_settings },
    }),
    makesVersion: true,
  },
];

interface Fixture {
  agentId: string;
  mainBranchId: string;
  branchId: string;
  heads: Record<string, string>;
}

/** An agent (by the admin) with an unprotected branch, and main at the given protection. */
async function fixture(protection: (typeof PROTECTIONS)[number]): Promise<Fixture> {
  const { admin } = testApp.keys;
  const { agentId, mainBranchId, versionId } = await createAgent(testApp, { key: admin, name: 'Guarded', conversationConfig: {} });
  const branch = okJson<{ created_branch_id: string; created_version_id: string }>(
    await send('POST', `/v1/convai/agents/${agentId}/branches`, admin, { parent_version_id: versionId, name: 'Feature', description: '' }),
  );
  okJson(await send('PATCH', `/v1/convai/agents/${agentId}/branches/${mainBranchId}`, admin, { protection_status: protection }));
  return {
    agentId,
    mainBranchId,
    branchId: branch.created_branch_id,
    heads: { [mainBranchId]: versionId, [branch.created_branch_id]: branch.created_version_id },
  };
}

async function settingsEvents(agentId: string) {
  const rows = await testApp.store.db.selectFrom('audit_events').selectAll().where('agent_id', '=', agentId).where('action', '=', 'agent.settings_update').execute();
  return rows.map((row) => ({ ...row, details: JSON.parse(row.details) as { branch_id: string; paths: string[]; changes: { path: string; before: unknown; after: unknown }[] } }));
}

async function versionCount(agentId: string): Promise<number> {
  const row = await testApp.store.db.selectFrom('versions').select((eb) => eb.fn.countAll<number>().as('n')).where('agent_id', '=', agentId).executeTakeFirstOrThrow();
  return Number(row.n);
}

/** What main serves: the agent read with no selector (the live agent). */
async function liveSettings(agentId: string): Promise<Record<string, unknown>> {
  return okJson<{ platform_settings: Record<string, unknown> }>(await send('GET', `/v1/convai/agents/${agentId}`, testApp.keys.admin)).platform_settings;
}

const mayWriteMain = (role: Role, protection: (typeof PROTECTIONS)[number]) => role === 'admin' || (role === 'editor' && protection === 'writer_perms_required');

describe('agent-wide settings need write access to main, wherever they are sent, and are audited', () => {
  for (const route of ROUTES) {
    describe(route.name, () => {
      // Viewers and commenters are refused by every write route (test/access-matrix.test.ts): once here is enough.
      const roles: Role[] = route === ROUTES[0] ? ROLES : ['editor', 'admin'];
      const cases = roles.flatMap((role) =>
        PROTECTIONS.flatMap((protection) => BRANCHES.flatMap((branch) => Object.keys(SETTINGS).map((setting) => [role, protection, branch, setting] as const))),
      );
      it.each(cases)('%s, main %s, on %s: %s', async (role, protection, branch, setting) => {
        const f = await fixture(protection);
        const branchId = branch === 'main' ? f.mainBranchId : f.branchId;
        const { value, paths } = SETTINGS[setting];
        const request = route.request(f, branchId, { [setting]: value });
        const before = await liveSettings(f.agentId);

        if (!mayWriteMain(role, protection)) {
          const snapshot = await snapshotDatabase(testApp.store.db);
          expectApiError(await send(request.method, request.url, testApp.keys[role], request.payload), 403, 'authorization_error');
          expect(snapshotDiff(snapshot, await snapshotDatabase(testApp.store.db)), 'a refusal changed the database').toEqual([]);
          expect(await liveSettings(f.agentId)).toEqual(before);
          return;
        }

        const versions = await versionCount(f.agentId);
        const startedAt = Date.now();
        const response = await send(request.method, request.url, testApp.keys[role], request.payload);
        expect(response.statusCode, describeResponse(response)).toBe(200);
        const after = await liveSettings(f.agentId);
        expect(after[setting], 'the live agent shows the new setting').not.toEqual(before[setting]);
        expect(await versionCount(f.agentId)).toBe(versions + (route.makesVersion ? 1 : 0));

        const events = await settingsEvents(f.agentId);
        expect(events, 'exactly one agent.settings_update event').toHaveLength(1);
        const [event] = events;
        expect(event).toMatchObject({ actor_kind: 'user', actor_user_id: userId[role], resource_id: f.agentId });
        expect(event.at_ms).toBeGreaterThanOrEqual(startedAt - 1_000);
        expect(event.details.paths).toEqual(paths);
        // The branch the write named (for a branch creation: the new branch).
        const named = request.method === 'POST' ? (response.json() as { created_branch_id: string }).created_branch_id : branchId;
        expect(event.details.branch_id).toBe(named);
        for (const change of event.details.changes) {
          const [head, ...rest] = change.path.split('.');
          const at = (settings: Record<string, unknown>) => rest.reduce<unknown>((node, key) => (node as Record<string, unknown>)[key], settings[head]);
          // An absent value shows as null in the event.
          expect(change.before, `${change.path} before`).toEqual(at(before) ?? null);
          expect(change.after, `${change.path} after`).toEqual(at(after) ?? null);
        }
      });
    });
  }
});

describe('writes that do not change agent-wide settings leave them and record no settings event', () => {
  it('sending the current settings back (an editor on a branch while main is protected) is no change, not a 403', async () => {
    const f = await fixture('admin_perms_required');
    okJson(await send('PATCH', `/v1/convai/agents/${f.agentId}`, testApp.keys.admin, { platform_settings: { call_limits: { daily_limit: 9 } } }));
    const current = await liveSettings(f.agentId);
    const response = await send('PATCH', `/v1/convai/agents/${f.agentId}?branch_id=${f.branchId}`, testApp.keys.editor, {
      platform_settings: { call_limits: current.call_limits, auth: current.auth, privacy: current.privacy, ban: current.ban, archived: current.archived },
      conversation_config: { agent: { first_message: 'only this changes' } },
    });
    expect(response.statusCode, describeResponse(response)).toBe(200);
    expect(await settingsEvents(f.agentId)).toHaveLength(1);
  });

  it('restore, merge, rebase, duplicate and drafts keep the settings as they are', async () => {
    const f = await fixture('writer_perms_required');
    const { admin } = testApp.keys;
    const agentUrl = `/v1/convai/agents/${f.agentId}`;
    okJson(await send('PATCH', agentUrl, admin, { platform_settings: { call_limits: { daily_limit: 11 }, auth: { enable_auth: true } } }));
    const settings = await liveSettings(f.agentId);
    const events = (await settingsEvents(f.agentId)).length;
    okJson(await send('PATCH', `${agentUrl}?branch_id=${f.branchId}`, admin, { conversation_config: { agent: { first_message: 'branch' } } }));
    okJson(await send('POST', `${agentUrl}/branches/${f.branchId}/restore`, admin, { version_id: f.heads[f.mainBranchId] }));
    okJson(await send('POST', `${agentUrl}/drafts?branch_id=${f.mainBranchId}`, admin, { conversation_config: {}, platform_settings: { call_limits: { daily_limit: 1 } }, workflow: {}, name: 'Draft' }));
    okJson(await send('PATCH', `${agentUrl}?branch_id=${f.branchId}`, admin, { conversation_config: { agent: { first_message: 'again' } } }));
    okJson(await send('POST', `${agentUrl}/branches/${f.branchId}/merge?target_branch_id=${f.mainBranchId}`, admin, { archive_source_branch: false }));
    // Main now holds the branch's changes: the rebase has nothing to do or lands main's merge version.
    expect([200, 409]).toContain((await send('POST', `${agentUrl}/branches/${f.branchId}/rebase`, admin)).statusCode);
    expect(await liveSettings(f.agentId)).toEqual(settings);
    expect(await settingsEvents(f.agentId)).toHaveLength(events);
    const copy = okJson<{ agent_id: string }>(await send('POST', `${agentUrl}/duplicate`, admin, {}));
    expect(await liveSettings(copy.agent_id)).toEqual(settings);
  });

  it('the audit log never shows a shareable token, only that it changed', async () => {
    const f = await fixture('writer_perms_required');
    okJson(await send('PATCH', `/v1/convai/agents/${f.agentId}`, testApp.keys.admin, { platform_settings: { auth: { shareable_token: 'tok_secret_value' } } }));
    const [event] = await settingsEvents(f.agentId);
    expect(event.details.paths).toEqual(['auth.shareable_token']);
    expect(JSON.stringify(event.details)).not.toContain('tok_secret_value');
    expect(event.details.changes).toEqual([{ path: 'auth.shareable_token', before: null, after: '<redacted>' }]);
  });
});
