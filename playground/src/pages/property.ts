// `/property/{id}`: one property in full (see src/citizen/property/page.ts).
import { mountProperty } from "../citizen/property/page";

mountProperty();
