// `/search`: citizen search (see src/citizen/search/page.ts).
import { mountSearch } from "../citizen/search/page";

mountSearch();
