// `/`: the landing page (see src/citizen/landing.ts).
import { mountLanding } from "../citizen/landing";

mountLanding();
