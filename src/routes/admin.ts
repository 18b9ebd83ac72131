import { Router } from 'express';
import { rateLimit } from 'express-rate-limit';
import type { AdminService } from '../admin/service';

export interface LoginLimit {
  /** Attempts per source address per window. */
  max: number;
  windowMs: number;
}

export function adminRouter(admin: AdminService, limit: LoginLimit): Router {
  const r = Router();
  const limiter = rateLimit({
    windowMs: limit.windowMs,
    limit: limit.max,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    handler: (_req, res) => {
      res.status(429).json({ errors: ['too many login attempts; try again later'] });
    },
  });
  r.post('/rks/v1/admin/login', limiter, async (req, res) => {
    const { login, password } = req.body as { login: string; password: string };
    const adminToken = await admin.login(login, password);
    res.status(200).json({ adminToken });
  });
  return r;
}
