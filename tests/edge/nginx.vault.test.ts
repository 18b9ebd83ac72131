import { edgeModeSuite } from './modes';

edgeModeSuite('nginx');
