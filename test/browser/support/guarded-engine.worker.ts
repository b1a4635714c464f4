// The real engine worker, unchanged, with the loopback guard evaluated first (module imports run in order).
import './loopback-guard';
import '../../../workers/engine.worker';
