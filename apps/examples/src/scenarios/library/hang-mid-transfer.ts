/** hang-mid-transfer: see death.ts. */
import { deathScenario } from './death.js';

export default deathScenario('hang');
