/**
 * The isolation library: named scenarios, each judged by its verdicts
 * (docs/scenarios.md, "The isolation library"). Small and quick, so a
 * campaign over them is practical.
 */
import type { Scenario } from '@moat/sim';
import bufferExhaustion from './buffer-exhaustion.js';
import confidentiality from './confidentiality.js';
import crashMidTransfer from './crash-mid-transfer.js';
import forgedHandles from './forged-handles.js';
import grantRevoke from './grant-revoke.js';
import hangMidTransfer from './hang-mid-transfer.js';
import oomMidTransfer from './oom-mid-transfer.js';
import portHijack from './port-hijack.js';
import requestMutation from './request-mutation.js';
import syscallFlood from './syscall-flood.js';
import useAfterClose from './use-after-close.js';

export const LIBRARY: readonly Scenario[] = [
  forgedHandles,
  useAfterClose,
  grantRevoke,
  bufferExhaustion,
  syscallFlood,
  crashMidTransfer,
  hangMidTransfer,
  oomMidTransfer,
  portHijack,
  confidentiality,
  requestMutation,
];
