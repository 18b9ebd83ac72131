import type { AdminService } from '../admin/service';
import type { Handlers } from '../http/dispatch';

/** The admin surface: the administrator's login. */
export function adminRoutes(admin: AdminService): Handlers {
  return {
    adminLogin: async (req, res) => {
      const { login, password } = req.body as { login: string; password: string };
      const adminToken = await admin.login(login, password, req.ip ?? req.socket.remoteAddress ?? 'unknown');
      res.status(200).json({ adminToken });
    },
  };
}
