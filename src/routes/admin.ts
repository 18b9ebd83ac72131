import { Router } from 'express';
import type { AdminService } from '../admin/service';

export function adminRouter(admin: AdminService): Router {
  const r = Router();
  r.post('/rks/v1/admin/login', async (req, res) => {
    const { login, password } = req.body as { login: string; password: string };
    const adminToken = await admin.login(login, password, req.ip ?? req.socket.remoteAddress ?? 'unknown');
    res.status(200).json({ adminToken });
  });
  return r;
}
