import { useLocation } from 'preact-iso';

import { HOME_PATH } from '../paths';
import { Page } from '../ui';

export function NotFoundScreen() {
  const { path } = useLocation();
  return (
    <Page title="Page not found">
      <p>
        Nothing here at <code>{path}</code>. <a href={HOME_PATH}>Go to the agents</a>.
      </p>
    </Page>
  );
}
