import { edgeModeSuite } from './modes';

edgeModeSuite('haproxy');
