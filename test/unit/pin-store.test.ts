import { MemoryPinStore } from '../../core/pins/memory.ts';
import { describePinStore } from '../helpers/pin-store-contract.ts';

describePinStore('memory', () => new MemoryPinStore());
