// `/verify`: check a property's ledger proof in the browser (see src/verify/page.ts).
import { mountVerify } from "../verify/page";

mountVerify();
