/**
 * One OVSDB session per Open vSwitch database endpoint, shared by the Network controller
 * and the Instance controller's container attachments. A session that failed is dropped so
 * the next use reconnects (an ovsdb-server restarted empty is then simply re-populated).
 */
import { OvsdbClient } from './ovsdb.js';
import { OvsSwitch } from './switch.js';

export class OvsSwitches {
  private readonly open = new Map<string, { client: OvsdbClient; sw: OvsSwitch }>();

  get(database: string): OvsSwitch {
    let e = this.open.get(database);
    if (!e) {
      const client = new OvsdbClient(database);
      e = { client, sw: new OvsSwitch(client) };
      this.open.set(database, e);
    }
    return e.sw;
  }

  async forget(database: string): Promise<void> {
    const e = this.open.get(database);
    if (!e) return;
    this.open.delete(database);
    await e.client.close().catch(() => undefined);
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.open.keys()].map((d) => this.forget(d)));
  }
}
