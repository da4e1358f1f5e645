// `/status`: live figures from this node's /metrics (see src/status/page.ts).
import { mountStatus } from "../status/page";

mountStatus();
