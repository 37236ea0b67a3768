// The shared pieces every screen uses; import them from here.
export { BranchOptions } from './BranchOptions';
export { Button } from './Button';
export { Confirm } from './Confirm';
export { ErrorPanel } from './ErrorPanel';
export { Loading } from './Loading';
export { describeError, NoticeProvider, useNotice } from './Notice';
export { Page } from './Page';
export { RelativeTime } from './RelativeTime';
export { type Column, Table } from './Table';
